{#-
    Use a custom schema name as given instead of dbt's default "<target>_<custom>".

    The marts set no custom schema, so they land in the target schema, `main`: SPEC §5 makes
    them queryable by bare name. Staging, intermediate and snapshots get their own schemas
    (`staging`, `intermediate`, `snapshots`) so that BI users browsing `main` see the
    contract only.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
