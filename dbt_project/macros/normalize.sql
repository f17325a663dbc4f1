{#- Normalisation shared by the staging models. -#}

{% macro normalize_email(column) -%}
    nullif(lower(regexp_replace({{ column }}, '\s', '', 'g')), '')
{%- endmacro %}

{#- Digits only, with a leading + for international numbers written with + or 00. -#}
{% macro normalize_phone(column) -%}
    case
        when regexp_replace({{ column }}, '[^0-9]', '', 'g') = '' then null
        when trim({{ column }}) like '+%' then '+' || regexp_replace({{ column }}, '[^0-9]', '', 'g')
        when regexp_replace({{ column }}, '[^0-9]', '', 'g') like '00%'
            then '+' || substr(regexp_replace({{ column }}, '[^0-9]', '', 'g'), 3)
        else regexp_replace({{ column }}, '[^0-9]', '', 'g')
    end
{%- endmacro %}

{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{#- The features' reference date: var as_of_date, else the latest day the data knows of (the latest
    order, or the latest customer record when a record arrived after the last order). -#}
{% macro as_of_date() -%}
    {%- if var('as_of_date') -%}
        cast('{{ var("as_of_date") }}' as date)
    {%- else -%}
        (select coalesce(
            greatest(
                (select max(cast(ordered_at as date)) from {{ ref('stg_erp__orders') }}),
                (select max(cast(first_seen_at as date)) from {{ ref('customers') }})
            ),
            current_date))
    {%- endif -%}
{%- endmacro %}
