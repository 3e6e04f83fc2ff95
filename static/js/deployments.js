/* The deployment page's "try it" canvas: draw with the mouse or a finger, sent as model-sized pixels. */
(function () {
  "use strict";

  // <canvas data-draw-into="ID" data-channels data-height data-width>: light strokes on a dark
  // background (like the training images); after each stroke, the drawing, scaled down to the
  // model's size, is written into the hidden input #ID as JSON (channels x height x width, 0-255).
  function bindCanvas(canvas) {
    var target = document.getElementById(canvas.dataset.drawInto);
    var channels = parseInt(canvas.dataset.channels, 10);
    var height = parseInt(canvas.dataset.height, 10);
    var width = parseInt(canvas.dataset.width, 10);
    var context = canvas.getContext("2d");
    var drawing = false;

    function clear() {
      context.fillStyle = "#000";
      context.fillRect(0, 0, canvas.width, canvas.height);
      target.value = "";
    }

    function point(event) {
      var box = canvas.getBoundingClientRect();
      return { x: (event.clientX - box.left) * (canvas.width / box.width), y: (event.clientY - box.top) * (canvas.height / box.height) };
    }

    function store() {
      var small = document.createElement("canvas");
      small.width = width;
      small.height = height;
      var smallContext = small.getContext("2d");
      smallContext.imageSmoothingEnabled = true;
      smallContext.imageSmoothingQuality = "high";
      smallContext.drawImage(canvas, 0, 0, width, height);
      var rgba = smallContext.getImageData(0, 0, width, height).data;
      var planes = [];
      for (var c = 0; c < channels; c++) {
        var rows = [];
        for (var y = 0; y < height; y++) {
          var row = [];
          for (var x = 0; x < width; x++) {
            var i = (y * width + x) * 4;
            var value = channels === 1 ? 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2] : rgba[i + c];
            row.push(Math.round(value));
          }
          rows.push(row);
        }
        planes.push(rows);
      }
      target.value = JSON.stringify(planes);
      var file = canvas.closest("form") && canvas.closest("form").querySelector("input[type=file]");
      if (file) file.value = "";  // the drawing, not an earlier file, is what gets sent
    }

    canvas.addEventListener("pointerdown", function (event) {
      drawing = true;
      canvas.setPointerCapture(event.pointerId);
      var p = point(event);
      context.beginPath();
      context.moveTo(p.x, p.y);
      context.lineTo(p.x + 0.1, p.y + 0.1);
      context.stroke();
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) return;
      var p = point(event);
      context.lineTo(p.x, p.y);
      context.stroke();
    });
    ["pointerup", "pointercancel"].forEach(function (name) {
      canvas.addEventListener(name, function () {
        if (!drawing) return;
        drawing = false;
        store();
      });
    });
    context.lineWidth = Math.max(8, (canvas.width / width) * 1.8);  // about two model pixels wide, like a pen stroke
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = "#fff";
    clear();

    var clearButton = document.querySelector("[data-clear-canvas='" + canvas.id + "']");
    if (clearButton) clearButton.addEventListener("click", clear);
    var file = canvas.closest("form") && canvas.closest("form").querySelector("input[type=file]");
    if (file) file.addEventListener("change", function () { if (file.value) clear(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-draw-into]").forEach(bindCanvas);
  });
})();
