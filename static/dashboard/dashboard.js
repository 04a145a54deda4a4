/* The dashboard's charts: each <canvas data-metric="NAME"> draws NAME's days from the page's JSON
 * (<script id="dashboard-series" type="application/json">, written by json_script) with Chart.js
 * (static/vendor/chartjs). Shares show their 95% interval as a band; clicking a day opens its conversations.
 * Without JavaScript the same numbers are in the table beside each chart. */
(function () {
  "use strict";

  function cssColour(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function duration(seconds) {
    var whole = Math.round(seconds);
    if (whole < 60) return (seconds < 10 ? seconds.toFixed(1) : String(whole)) + " s";
    if (whole < 3600) return Math.floor(whole / 60) + " min " + String(whole % 60).padStart(2, "0") + " s";
    return Math.floor(whole / 3600) + " h " + String(Math.floor((whole % 3600) / 60)).padStart(2, "0") + " min";
  }

  function valueText(unit, value) {
    if (value === null || value === undefined) return "unknown";
    if (unit === "rate") return (value * 100).toFixed(1) + "%";
    if (unit === "score") return value.toFixed(2) + " / 5";
    if (unit === "seconds") return duration(value);
    return String(value);
  }

  function dayLabel(day) {
    var parts = day.split("-").map(Number);
    return new Date(parts[0], parts[1] - 1, parts[2]).toLocaleDateString(undefined, { day: "numeric", month: "short" });
  }

  function axis(unit) {
    if (unit === "rate") {
      return { min: 0, max: 1, ticks: { maxTicksLimit: 5, callback: function (v) { return Math.round(v * 100) + "%"; } } };
    }
    if (unit === "score") return { min: 1, max: 5, ticks: { stepSize: 1 } };
    if (unit === "seconds") return { beginAtZero: true, ticks: { maxTicksLimit: 5, callback: function (v) { return duration(v); } } };
    return { beginAtZero: true };
  }

  function datasets(series, colours) {
    var values = series.points.map(function (p) { return p.value; });
    var sets = [{
      label: series.label,
      data: values,
      borderColor: colours.line,
      backgroundColor: colours.line,
      // Days without data are gaps, not zeros: a day between two gaps is a lone point, so points stay visible.
      pointRadius: series.points.length > 62 ? 1.5 : 3,
      pointHitRadius: 6,
      borderWidth: 2,
      spanGaps: false,
      order: 0,
    }];
    if (series.unit === "rate") {
      var band = { borderWidth: 0, pointRadius: 0, pointHitRadius: 0, spanGaps: false, order: 1 };
      sets.push(Object.assign({ label: "95% low", data: series.points.map(function (p) { return p.low; }) }, band));
      sets.push(Object.assign({ label: "95% high", data: series.points.map(function (p) { return p.high; }),
        fill: "-1", backgroundColor: colours.band }, band));
    }
    return sets;
  }

  function draw(canvas, series, colours) {
    var y = axis(series.unit);
    y.grid = { color: colours.grid };
    y.ticks = Object.assign({ color: colours.text }, y.ticks || {});
    var chart = new window.Chart(canvas, {
      type: "line",
      data: { labels: series.points.map(function (p) { return dayLabel(p.day); }), datasets: datasets(series, colours) },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { maxTicksLimit: 6, maxRotation: 0, color: colours.text }, grid: { display: false } },
          y: y,
        },
        plugins: {
          legend: { display: false },
          tooltip: {
            filter: function (item) { return item.datasetIndex === 0; },
            callbacks: {
              label: function (item) {
                var point = series.points[item.dataIndex];
                var text = valueText(series.unit, point.value) + " (n = " + point.n + ")";
                if (point.low !== null && point.high !== null) {
                  text += ", 95% " + valueText("rate", point.low) + " to " + valueText("rate", point.high);
                }
                return text;
              },
            },
          },
        },
        onClick: function (event, elements) {
          if (elements.length && series.points[elements[0].index].url) {
            window.location.href = series.points[elements[0].index].url;
          }
        },
      },
    });
    canvas.dataset.drawn = "true";
    return chart;
  }

  function start() {
    var source = document.getElementById("dashboard-series");
    if (!source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    var colours = {
      line: cssColour("--primary", "#79aec8"),
      band: "rgba(121, 174, 200, 0.25)",
      grid: cssColour("--hairline-color", "#e8e8e8"),
      text: cssColour("--body-quiet-color", "#666"),
    };
    document.querySelectorAll("canvas[data-metric]").forEach(function (canvas) {
      var series = data[canvas.dataset.metric];
      if (series && series.points.length) draw(canvas, series, colours);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
