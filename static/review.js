// The review screen's keyboard flow: Enter accepts the field and moves to the next one (on
// the last, saves and opens the next draft), typing replaces the value (it is selected on
// focus), Tab moves as usual, F2 marks the field for a second look, F4 shows one field at
// a time. A changed My Number asks for the number once more before moving on. Enter while
// an IME is composing is left alone.
(() => {
  const form = document.getElementById("review-form");
  if (!form) return;
  const inputs = [...form.querySelectorAll("input.value:not([readonly])")];
  const mn = form.querySelector("input[data-my-number]");
  const confirmBox = form.querySelector("input.confirm");
  const mnChanged = () => mn && mn.value.trim() !== mn.dataset.original;
  const showConfirm = () => {
    if (confirmBox) confirmBox.hidden = !mnChanged();
  };
  const order = () => inputs.flatMap((i) => (i === mn && confirmBox && !confirmBox.hidden ? [i, confirmBox] : [i]));
  const next = (el) => {
    const o = order();
    const i = o.indexOf(el);
    if (i + 1 < o.length) o[i + 1].focus();
    else form.requestSubmit();
  };
  for (const el of [...inputs, confirmBox].filter(Boolean)) {
    const row = el.closest("li");
    el.addEventListener("focus", () => {
      el.select();
      form.querySelectorAll("li.current").forEach((r) => r.classList.remove("current"));
      row.classList.add("current");
      row.scrollIntoView({ block: "nearest" });
    });
    // One field at a time keeps the last field shown while the focus is elsewhere.
    el.addEventListener("blur", () => {
      if (!form.classList.contains("single")) row.classList.remove("current");
    });
    el.addEventListener("input", () => {
      if (el.dataset.original !== undefined) row.classList.toggle("edited", el.value !== el.dataset.original);
      if (el === mn) showConfirm();
    });
    el.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.isComposing) {
        ev.preventDefault();
        if (el === mn) showConfirm();
        next(el);
      } else if (ev.key === "F2") {
        ev.preventDefault();
        const box = row.querySelector("input[name=look]");
        box.checked = !box.checked;
        row.classList.toggle("look", box.checked);
      }
    });
  }
  // One field at a time (F4 or the box): only the field in focus shows, large; the choice
  // is remembered for the next draft.
  const single = document.getElementById("one-at-a-time");
  const setSingle = (on) => {
    form.classList.toggle("single", on);
    if (single) single.checked = on;
    try { localStorage.setItem("hozon.review.single", on ? "1" : ""); } catch (_) { /* private mode */ }
  };
  if (single) single.addEventListener("change", () => setSingle(single.checked));
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "F4") {
      ev.preventDefault();
      setSingle(!form.classList.contains("single"));
    }
  });
  try { setSingle(localStorage.getItem("hozon.review.single") === "1"); } catch (_) { /* private mode */ }
  showConfirm();
  if (inputs.length) inputs[0].focus();
})();
