"""Plotly figures built on the server, served as JSON to the page (static/js/lepton.js draws them)."""

import json

import plotly.graph_objects as go

LAYOUT = {
    "margin": {"l": 48, "r": 16, "t": 32, "b": 48},
    "height": 320,
    "template": "plotly_white",
    "font": {"size": 12},
}


def figure_json(figure: go.Figure) -> dict:
    """A plain dict Plotly.newPlot accepts (and the API can return as is)."""
    return json.loads(figure.to_json())


def bar_chart(labels: list[str], values: list[float], *, title: str, x_title: str, y_title: str) -> dict:
    figure = go.Figure(go.Bar(x=labels, y=values, marker_color="#4f46e5"))
    figure.update_layout(**LAYOUT, title=title, xaxis_title=x_title, yaxis_title=y_title)
    figure.update_xaxes(type="category")
    return figure_json(figure)
