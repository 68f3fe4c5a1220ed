// The batch page: live progress (polled every 2 s) and the upload form, which posts the
// files with the CSRF token in a header. Served as a file: the CSP allows no inline script.
(() => {
  const id = document.getElementById("batch").dataset.id;
  const csrf = document.querySelector("input[name=csrf]")?.value || "";
  const set = (k, v) => { const e = document.getElementById(k); if (e) e.textContent = v; };
  async function refresh() {
    const r = await fetch(`/batches/${id}/progress`, { headers: { accept: "application/json" } });
    if (!r.ok) return;
    const p = await r.json();
    set("p-expected", p.expected); set("p-received", p.received); set("p-read", p.read);
    set("p-failed", p.failed); set("p-queued", p.queued); set("p-status", p.status_label);
    set("p-forms", p.forms); set("p-attachments", p.attachments); set("p-unclassified", p.unclassified);
    document.getElementById("p-status").className = p.status === "mismatch" ? "warn" : "";
    const bar = document.getElementById("p-bar"); bar.max = Math.max(p.expected, p.received); bar.value = p.read;
  }
  setInterval(refresh, 2000);
  refresh();
  const form = document.getElementById("upload");
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    set("upload-msg", "送信中…");
    const r = await fetch(`/batches/${id}/upload`, { method: "POST", body: data, headers: { "x-csrf-token": csrf } });
    set("upload-msg", r.ok ? "受け付けました。読み取りの進み具合は上に表示されます。" : "アップロードできませんでした（" + r.status + "）");
    form.reset();
    refresh();
  });
})();
