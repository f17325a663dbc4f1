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

{#- The features' reference date ("today" for recency): var as_of_date, else SEGMENTS_AS_OF (`segments run
    --as-of`), else the day of the latest completed order (cancelled and returned orders do not move it), or
    of the latest customer record when a record arrived after it, so every customer is known on that date. -#}
{% macro as_of_date() -%}
    {%- set chosen = var('as_of_date') or env_var('SEGMENTS_AS_OF', '') -%}
    {%- if chosen and not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', chosen | string) -%}
        {{ exceptions.raise_compiler_error("as_of_date must be a date YYYY-MM-DD, got " ~ chosen) }}
    {%- endif -%}
    {%- if chosen -%}
        cast('{{ chosen }}' as date)
    {%- else -%}
        (select coalesce(
            greatest(
                (select max(cast(ordered_at as date)) from {{ ref('stg_erp__orders') }} where status = 'completed'),
                (select max(cast(first_seen_at as date)) from {{ ref('customers') }})
            ),
            current_date))
    {%- endif -%}
{%- endmacro %}

{#- The currency every amount is converted to (ISO 4217): SEGMENTS_BASE_CURRENCY (the project's `base_currency`,
    set by the dbt steps), else var base_currency. An order or payment in it needs no exchange rate. -#}
{% macro base_currency() -%}
    {%- set chosen = env_var('SEGMENTS_BASE_CURRENCY', '') or var('base_currency') -%}
    {%- if not modules.re.match('^[A-Z]{3}$', chosen | string) -%}
        {{ exceptions.raise_compiler_error("base_currency must be a three-letter ISO 4217 code, got " ~ chosen) }}
    {%- endif -%}
    '{{ chosen }}'
{%- endmacro %}
