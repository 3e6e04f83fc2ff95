/* Lepton's page behaviour: plotly charts from server JSON, upload progress, source toggles. */
(function () {
  "use strict";

  // <div class="plotly-chart" data-figure="ID"> + {{ figure|json_script:"ID" }} -> a chart.
  function drawCharts(root) {
    if (!window.Plotly) return;
    root.querySelectorAll(".plotly-chart[data-figure]").forEach(function (div) {
      var source = document.getElementById(div.dataset.figure);
      if (!source) return;
      var figure = JSON.parse(source.textContent);
      var menu = figure.layout.updatemenus && figure.layout.updatemenus[0];
      var chosen = chartButtons[div.dataset.figure];
      if (menu && chosen !== undefined && menu.buttons[chosen]) {
        // a live chart redrawn by htmx keeps the axis the user chose (size / latency)
        var args = menu.buttons[chosen].args;
        Object.keys(args[0]).forEach(function (key) {
          figure.data.forEach(function (trace, index) { trace[key] = args[0][key][index]; });
        });
        Object.keys(args[1]).forEach(function (path) { setPath(figure.layout, path, args[1][path]); });
        menu.active = chosen;
      }
      window.Plotly.react(div, figure.data, figure.layout, { displayModeBar: false, responsive: true });
      if (menu) {
        div.on("plotly_buttonclicked", function (event) {
          chartButtons[div.dataset.figure] = menu.buttons.findIndex(function (b) { return b.label === event.button.label; });
        });
      }
      if (div.dataset.clickOpens) {
        // points carry the URL of what they show (e.g. a model version) in customdata
        div.on("plotly_click", function (event) {
          var url = event.points.length && event.points[0].customdata;
          if (url) window.location.href = url;
        });
      }
    });
  }

  var chartButtons = {};

  function setPath(object, path, value) {
    var keys = path.split(".");
    var last = keys.pop();
    keys.forEach(function (key) { object = object[key] = object[key] || {}; });
    object[last] = value;
  }

  // The experiment form: the grid builder only matters for the grid strategy.
  function bindStrategyToggle(root) {
    root.querySelectorAll("form").forEach(function (form) {
      var radios = form.querySelectorAll("input[name=strategy]");
      var builder = form.querySelector("[data-strategy=grid]");
      if (!radios.length || !builder) return;
      function sync() {
        var chosen = form.querySelector("input[name=strategy]:checked");
        builder.hidden = !chosen || chosen.value !== "grid";
      }
      radios.forEach(function (radio) { radio.addEventListener("change", sync); });
      sync();
    });
  }

  // Forms with radio "source": show the fields of the chosen source only.
  function bindSourceToggles(root) {
    root.querySelectorAll("form").forEach(function (form) {
      var radios = form.querySelectorAll("input[name=source]");
      if (!radios.length) return;
      function sync() {
        var chosen = form.querySelector("input[name=source]:checked");
        var value = chosen ? chosen.value : "upload";
        form.querySelectorAll(".source-upload").forEach(function (el) { el.hidden = value !== "upload"; });
        form.querySelectorAll(".source-bundled").forEach(function (el) { el.hidden = value !== "bundled"; });
      }
      radios.forEach(function (radio) { radio.addEventListener("change", sync); });
      sync();
    });
  }

  // htmx uploads report progress; show it in the form's [data-upload-progress] bar.
  document.addEventListener("htmx:xhr:progress", function (event) {
    var bar = event.target.querySelector && event.target.querySelector("[data-upload-progress]");
    if (!bar || !event.detail.lengthComputable) return;
    var percent = Math.round((event.detail.loaded / event.detail.total) * 100);
    bar.hidden = false;
    bar.firstElementChild.style.width = percent + "%";
    bar.firstElementChild.textContent = percent < 100 ? percent + "% uploaded" : "uploaded, checking…";
  });

  // Behaviour declared by data attributes, not inline handlers: the Content-Security-Policy
  // refuses onsubmit=/onclick=. Listeners on the document also cover content htmx swaps in.
  document.addEventListener("submit", function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-submit-on-change]")) event.target.form.requestSubmit();
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy-from]");
    var source = button && document.getElementById(button.dataset.copyFrom);
    if (source && navigator.clipboard) navigator.clipboard.writeText(source.value);
  });

  // Sizes computed on the server come as data attributes and are applied here through the
  // CSSOM: the Content-Security-Policy refuses style="" attributes.
  function applySizes(root) {
    root.querySelectorAll("[data-bar-width]").forEach(function (el) { el.style.width = el.dataset.barWidth + "%"; });
    root.querySelectorAll("[data-line-height]").forEach(function (el) { el.style.lineHeight = el.dataset.lineHeight + "px"; });
  }

  function init(root) {
    applySizes(root);
    drawCharts(root);
    bindSourceToggles(root);
    bindStrategyToggle(root);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  // Content swapped in by htmx gets the same treatment.
  document.addEventListener("htmx:afterSettle", function (event) { init(event.detail.elt); applySizes(document); });
})();
