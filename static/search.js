// Search page: results update as the reviewer types (debounced), and the keyboard moves
// through them. Without JavaScript the form still works as a plain GET.
(() => {
  const form = document.getElementById('search-form');
  const box = document.getElementById('q');
  const area = document.getElementById('results');
  if (!form || !box || !area) return;
  let timer = null;
  let seq = 0;
  let selected = -1;

  const query = () => new URLSearchParams(new FormData(form)).toString();

  async function refresh() {
    const my = ++seq;
    const qs = query();
    if (!box.value.trim()) {
      area.innerHTML = '';
      return;
    }
    let res;
    try {
      res = await fetch('/search/results?' + qs, { credentials: 'same-origin' });
    } catch (_) {
      return;
    }
    if (my !== seq) return; // a newer request is on its way
    if (!res.ok) {
      area.innerHTML = '<p class="error" role="alert">検索できませんでした。再度ログインが必要な場合があります。</p>';
      return;
    }
    area.innerHTML = await res.text();
    history.replaceState(null, '', '/search?' + qs);
    selected = -1;
  }

  box.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
  form.addEventListener('change', refresh);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearTimeout(timer);
    refresh();
  });

  const items = () => Array.from(area.querySelectorAll('li.result'));
  function select(i) {
    const list = items();
    if (!list.length) return;
    selected = Math.max(0, Math.min(i, list.length - 1));
    list.forEach((el, n) => el.classList.toggle('selected', n === selected));
    list[selected].focus();
    list[selected].scrollIntoView({ block: 'nearest' });
  }

  document.addEventListener('keydown', (e) => {
    const inBox = document.activeElement === box;
    if (e.key === '/' && !inBox) {
      e.preventDefault();
      box.focus();
      box.select();
    } else if (e.key === 'ArrowDown' || (e.key === 'j' && !inBox)) {
      e.preventDefault();
      select(selected + 1);
    } else if (e.key === 'ArrowUp' || (e.key === 'k' && !inBox)) {
      e.preventDefault();
      if (selected <= 0) {
        selected = -1;
        items().forEach((el) => el.classList.remove('selected'));
        box.focus();
      } else {
        select(selected - 1);
      }
    } else if (e.key === 'Enter' && !inBox && selected >= 0) {
      e.preventDefault();
      location.href = items()[selected].dataset.href;
    } else if (e.key === 'c' && !inBox && selected >= 0) {
      const a = items()[selected].querySelector('a.open-case');
      if (a) location.href = a.href;
    }
  });
})();
