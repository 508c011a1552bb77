/* 干训 · the grouped topic picker of the programme builder: one <details> per plan branch, and a search box
   that keeps only the topics whose name or synonyms contain what was typed (opening their branches). */
"use strict";

(() => {
  const picker = document.getElementById("topic-picker");
  if (!picker) return;
  const search = document.getElementById("topic-search");
  const count = document.getElementById("picked-count");
  const names = document.getElementById("picked-names");
  const none = document.getElementById("no-topic");
  const boxes = [...picker.querySelectorAll("input[type=checkbox]")];

  function filter() {
    const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    picker.querySelectorAll("details.branch").forEach((branch) => {
      let any = 0;
      branch.querySelectorAll("label.choice").forEach((label) => {
        const text = label.dataset.text.toLowerCase();
        const hit = words.every((w) => text.includes(w));
        label.hidden = !hit;
        any += hit;
      });
      branch.hidden = any === 0;
      if (words.length) branch.open = any > 0;
      shown += any;
    });
    none.hidden = shown > 0;
  }

  function picked() {
    const on = boxes.filter((b) => b.checked);
    count.textContent = String(on.length);
    names.textContent = on.map((b) => b.parentElement.textContent.trim()).join("、");
  }

  search.addEventListener("input", filter);
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") e.preventDefault(); });
  boxes.forEach((b) => b.addEventListener("change", picked));
})();
