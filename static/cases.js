// The person page's case import: posts the chosen CSV with the CSRF token in a header (a
// multipart form cannot carry it otherwise) and shows what was imported and which rows were
// refused, by line and field.
(() => {
  const form = document.getElementById("case-import");
  if (!form) return;
  const csrf = document.querySelector("input[name=csrf]")?.value || "";
  const out = document.getElementById("import-result");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    out.textContent = "取り込み中…";
    const r = await fetch("/cases/import", { method: "POST", body: new FormData(form), headers: { "x-csrf-token": csrf } });
    if (!r.ok) {
      out.textContent = "取り込めませんでした（" + r.status + "）";
      return;
    }
    const j = await r.json();
    out.textContent = `${j.file}: 新規 ${j.created} 件・更新 ${j.updated} 件・変更なし ${j.unchanged} 件・エラー ${j.errors.length} 件`;
    const list = document.createElement("ul");
    for (const e of j.errors) {
      const li = document.createElement("li");
      li.textContent = e;
      list.appendChild(li);
    }
    out.appendChild(list);
  });
})();
