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
      window.Plotly.react(div, figure.data, figure.layout, { displayModeBar: false, responsive: true });
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

  function init(root) {
    drawCharts(root);
    bindSourceToggles(root);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  // Content swapped in by htmx gets the same treatment.
  document.addEventListener("htmx:afterSettle", function (event) { init(event.detail.elt); });
})();
