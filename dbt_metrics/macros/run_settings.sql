{#- The run settings table (bench_assets/run/run_settings.py, written into the DuckDB file by
    bench_assets/store/schema.py): one row per setting in its order, with its name (`setting`), `default_value`
    and `configures_model`. Read when a model runs; while dbt only parses, empty. -#}
{% macro run_settings(configures_model_only=false) %}
    {%- set table = source('bench', 'run_settings') -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        select setting, default_value from {{ table }}
        {% if configures_model_only %}where configures_model{% endif %}
        order by position
    {%- endset -%}
    {{ return(run_query(query).rows) }}
{% endmacro %}

{#- `relation`.<setting> for every run setting, comma-separated: a mart's setting columns. -#}
{% macro run_setting_columns(relation) %}
    {%- for row in run_settings() %}{{ relation }}.{{ row['setting'] }}{% if not loop.last %}, {% endif %}{% endfor -%}
{% endmacro %}
