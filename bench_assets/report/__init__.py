"""The HTML report over the dbt marts: `queries` (SQL over the marts only), `charts` (inline SVG), `page` (renders
`templates/*.html.j2` with Jinja2). The Dagster asset that writes it is bench_assets/defs/report.py."""
