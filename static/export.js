// The export run's result upload: posts the subsidy system's result file with the CSRF token
// in a header (a multipart form cannot carry it otherwise) and then shows the run's page again
// (each result imported is listed there with its refused lines).
(() => {
  const form = document.getElementById("result-upload");
  if (!form) return;
  const csrf = form.querySelector("input[name=csrf]")?.value || "";
  const out = document.getElementById("result-status");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.textContent = "取り込み中…";
    const r = await fetch(form.action, { method: "POST", body: new FormData(form), headers: { "x-csrf-token": csrf } });
    const html = await r.text();
    if (!r.ok) {
      const doc = new DOMParser().parseFromString(html, "text/html");
      out.textContent = (doc.querySelector("main p")?.textContent || "取り込めませんでした") + "（" + r.status + "）";
      return;
    }
    // The run's page lists every result imported, with its refused lines.
    location.href = form.action.replace(/\/result$/, "");
  });
})();
