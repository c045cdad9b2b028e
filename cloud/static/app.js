// KalGuard Cloud dashboard: progressive enhancement only. Every page works without it.
document.addEventListener("click", function (ev) {
  var copy = ev.target.closest("button[data-copy]");
  if (copy) {
    var el = document.getElementById(copy.getAttribute("data-copy"));
    if (el && navigator.clipboard) {
      navigator.clipboard.writeText(el.textContent.trim()).then(function () {
        copy.textContent = "Copied";
      });
    }
  }
});
