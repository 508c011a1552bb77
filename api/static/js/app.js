/* 干训: small helpers shared by the pages (charts from embedded JSON, job progress polling). */
"use strict";

function gxData(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

function gxChart(id, option) {
  const el = document.getElementById(id);
  if (!el || typeof echarts === "undefined") return null;
  const chart = echarts.init(el, null, { renderer: "canvas" });
  chart.setOption(option);
  window.addEventListener("resize", () => chart.resize());
  el.dataset.rendered = "1";
  return chart;
}

/* fetch() for the pages: the session cookie, and on every request that changes something the CSRF token of the
   page's csrf-token meta tag (api/security.py refuses a cookie-authenticated POST, PUT, PATCH or DELETE without it). */
function gxFetch(url, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = new Headers(options.headers || {});
  if (!["GET", "HEAD", "OPTIONS"].includes(method)) {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) headers.set("X-CSRFToken", meta.content);
  }
  return fetch(url, { credentials: "same-origin", ...options, headers });
}

async function gxPollJob(jobId, bar, text, done, base = "/api/admin/jobs/") {
  const response = await gxFetch(`${base}${jobId}`);
  const job = await response.json();
  bar.style.width = `${job.percent}%`;
  const state = job.message.startsWith(job.state_name) ? "" : `${job.state_name}：`;  // "失败：…" says it already
  text.textContent = `${state}${job.message}（${job.percent}%）`;
  if (job.state === "running") {
    setTimeout(() => gxPollJob(jobId, bar, text, done, base), 800);
  } else if (done) {
    done(job);
  }
}

async function gxStartJob(url, body, bar, text, done) {
  const response = await gxFetch(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
  });
  const job = await response.json();
  if (!response.ok) { text.textContent = job["错误"] || "启动失败"; return false; }
  gxPollJob(job.id, bar, text, done);
  return true;
}

/* A form marked data-loading="正在…" says so on its button, and the button stays disabled, until the next page
   arrives (a solve or a report can take seconds); coming back to the page (bfcache) enables it again. */
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.dataset || !form.dataset.loading || event.defaultPrevented) return;
  const button = form.querySelector("button[type=submit], button:not([type])");
  if (button) { button.dataset.label = button.textContent; button.textContent = form.dataset.loading; button.disabled = true; }
  form.setAttribute("aria-busy", "true");
});
window.addEventListener("pageshow", () => document.querySelectorAll("form[aria-busy=true]").forEach((form) => {
  form.removeAttribute("aria-busy");
  const button = form.querySelector("button[disabled][data-label]");
  if (button) { button.textContent = button.dataset.label; button.disabled = false; }
}));

/* A table.cards turns each row into a block on a phone (app.css): every cell is given its column's name, shown
   before it there, so the headers need not be repeated in the templates. */
function gxCards(root = document) {
  root.querySelectorAll("table.cards").forEach((table) => {
    const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    table.querySelectorAll("tbody tr").forEach((row) => [...row.children].forEach((cell, i) => {
      if (names[i] && cell.colSpan === 1 && !cell.dataset.label) cell.dataset.label = names[i];
    }));
  });
}
document.addEventListener("DOMContentLoaded", () => gxCards());
