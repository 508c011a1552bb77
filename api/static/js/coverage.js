/* 干训 · the designer's coverage heat map: supply and demand on two separate scales.
   Supply (blue, four columns) is coloured 0–1 by how much of it there is (share of the column's maximum for
   courses and hours, 1/(1 + years) for freshness, ratings from the lowest to the highest rated topic shown); demand (orange-red, one
   column) is coloured by the real number of cadres who lack the topic.  Each has its own legend, and the
   tooltip shows the real figures, so a topic many cadres lack never looks "sufficient". */
"use strict";

(() => {
  const rows = gxData("coverage-data");
  const el = document.getElementById("coverage-chart");
  if (!rows || !el) return;
  const ratingMax = Number(el.dataset.ratingMax || 5);
  const one = (v) => (v == null ? "无数据" : Number(v).toFixed(1));
  const branches = [...new Set(rows.map((r) => r["一级主题"]))];
  const filter = document.getElementById("branch-filter");
  branches.forEach((b) => filter.add(new Option(b, b)));

  const supply = [
    { name: "课程门数", value: (r, m) => (r["已发布课程数"] || 0) / m.courses,
      text: (r) => `本主题 ${r["已发布课程数"] || 0} 门（含下位主题 ${r["含下位主题课程数"] || 0} 门）` },
    { name: "学时", value: (r, m) => (r["学时"] || 0) / m.hours, text: (r) => `${one(r["学时"] || 0)} 学时` },
    { name: "时效", value: (r) => (r["平均距上次更新年数"] == null ? 0 : 1 / (1 + r["平均距上次更新年数"])),
      text: (r) => (r["平均距上次更新年数"] == null ? "无数据" : `平均距上次更新 ${one(r["平均距上次更新年数"])} 年`) },
    { name: "学员评分", value: (r, m) => (r["学员评分"] == null ? 0 : (r["学员评分"] - m.ratingLow) / m.ratingSpan),
      text: (r) => (r["学员评分"] == null ? "无数据" : `${Number(r["学员评分"]).toFixed(2)} 分（满分 ${ratingMax}，${r["评分人次"] || 0} 人次）`) },
  ];
  const demandName = "需求人数";
  const demandText = (r) => (r["需求人数"] == null ? "无数据" : `${Math.round(r["需求人数"])} 人缺这一主题`);

  function tooltip(r) {
    const lines = supply.map((s) => `${s.name}：${s.text(r)}`);
    lines.push(`需求：${demandText(r)}`);
    lines.push(`供给缺口指数：${one(r["供给缺口指数"])}（折算课程 ${one(r["折算课程数"])} 门）`);
    return `<strong>${r["主题"]}</strong>（${r["一级主题"]}）<br>${lines.join("<br>")}`;
  }

  let chart = null;
  function draw() {
    const shown = rows.filter((r) => !filter.value || r["一级主题"] === filter.value)
      .sort((a, b) => branches.indexOf(a["一级主题"]) - branches.indexOf(b["一级主题"])
        || (b["需求人数"] || 0) - (a["需求人数"] || 0));
    const max = (key) => Math.max(1e-9, ...shown.map((r) => r[key] || 0));
    const rated = shown.filter((r) => r["学员评分"] != null).map((r) => r["学员评分"]);
    const ratingLow = rated.length ? Math.min(...rated) : 0;
    const m = { courses: max("已发布课程数"), hours: max("学时"), ratingLow,
                ratingSpan: Math.max(1e-9, (rated.length ? Math.max(...rated) : ratingMax) - ratingLow) };
    const demandMax = Math.max(1, ...shown.map((r) => r["需求人数"] || 0));
    const supplyData = [], demandData = [];
    shown.forEach((r, y) => {
      supply.forEach((s, x) => supplyData.push([x, y, +s.value(r, m).toFixed(3)]));
      demandData.push([0, y, r["需求人数"] == null ? "-" : r["需求人数"]]);
    });
    const narrow = el.clientWidth < 600;
    const labelWidth = narrow ? 96 : 170;
    el.style.height = `${shown.length * 18 + 150}px`;
    const option = {
      tooltip: { confine: true, formatter: (p) => tooltip(shown[p.value[1]]) },
      grid: [{ left: labelWidth + 8, right: narrow ? 78 : 150, top: 40, bottom: 90 },
             { right: narrow ? 8 : 40, width: narrow ? 62 : 100, top: 40, bottom: 90 }],
      xAxis: [{ type: "category", data: supply.map((s) => s.name), position: "top", gridIndex: 0,
                axisLabel: { interval: 0, fontSize: narrow ? 10 : 12 } },
              { type: "category", data: [demandName], position: "top", gridIndex: 1,
                axisLabel: { interval: 0, fontSize: narrow ? 10 : 12 } }],
      yAxis: [{ type: "category", data: shown.map((r) => r["主题"]), inverse: true, gridIndex: 0,
                axisLabel: { interval: 0, fontSize: 11, width: labelWidth, overflow: "truncate" } },
              { type: "category", data: shown.map((r) => r["主题"]), inverse: true, gridIndex: 1, axisLabel: { show: false } }],
      visualMap: [
        { type: "continuous", seriesIndex: 0, min: 0, max: 1, orient: "horizontal", left: narrow ? 0 : labelWidth,
          bottom: 10, itemWidth: 12, itemHeight: narrow ? 90 : 160, calculable: false,
          text: ["供给多", "供给少"], formatter: (v) => `${Math.round(100 * v)} %`,
          inRange: { color: ["#f4f8fc", "#9ecae1", "#2171b5", "#08306b"] } },
        { type: "continuous", seriesIndex: 1, min: 0, max: demandMax, orient: "horizontal", right: narrow ? 0 : 20,
          bottom: 10, itemWidth: 12, itemHeight: narrow ? 70 : 140, calculable: false,
          text: [`${Math.round(demandMax)} 人`, "0 人"], formatter: (v) => `${Math.round(v)} 人`,
          inRange: { color: ["#fff5eb", "#fdae6b", "#e6550d", "#a63603"] } },
      ],
      series: [
        { name: "供给", type: "heatmap", xAxisIndex: 0, yAxisIndex: 0, data: supplyData },
        { name: "需求", type: "heatmap", xAxisIndex: 1, yAxisIndex: 1, data: demandData },
      ],
    };
    if (chart) { chart.resize(); chart.setOption(option, true); } else { chart = gxChart("coverage-chart", option); }
    el.dataset.rows = String(shown.length);
  }
  filter.addEventListener("change", draw);
  draw();
})();
