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

{#- One setting of the prediction definition (horizon_days, snapshot_count, snapshot_every_days, snapshot_dates):
    from SEGMENTS_PREDICTION (JSON the dbt steps set from the project's prediction definition, or `segments
    backtest`), else var prediction. -#}
{% macro prediction_setting(key) -%}
    {%- set chosen = fromjson(env_var('SEGMENTS_PREDICTION', '{}') or '{}') -%}
    {{ return(chosen[key] if key in chosen else var('prediction')[key]) }}
{%- endmacro %}

{#- Days after a snapshot its outcome (churned, future orders and spend) is measured over. -#}
{% macro prediction_horizon_days() -%}
    {%- set days = prediction_setting('horizon_days') | string -%}
    {%- if not modules.re.match('^[1-9][0-9]{0,3}$', days) -%}
        {{ exceptions.raise_compiler_error("prediction horizon_days must be a whole number of days 1..9999, got " ~ days) }}
    {%- endif -%}
    {{ days }}
{%- endmacro %}

{#- The dates training snapshots are taken on, as a query with an as_of_date column: snapshot_dates when given
    (`segments backtest --as-of`), else snapshot_count dates snapshot_every_days apart, the latest
    horizon_days before the features' reference date (`as_of_date()`), so that every snapshot's outcome
    window is complete. -#}
{% macro training_as_of_dates() -%}
    {%- set listed = prediction_setting('snapshot_dates') or [] -%}
    {%- if listed is string -%}{%- set listed = listed.split(',') -%}{%- endif -%}
    {%- if listed | length > 0 -%}
        {%- for d in listed -%}
            {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', d | string | trim) -%}
                {{ exceptions.raise_compiler_error("snapshot_dates must be dates YYYY-MM-DD, got " ~ d) }}
            {%- endif -%}
        {%- endfor -%}
        select distinct cast(d as date) as as_of_date from (values
        {%- for d in listed %} ('{{ d | string | trim }}'){{ "," if not loop.last }}{% endfor %}) as listed (d)
    {%- else -%}
        {%- set count = prediction_setting('snapshot_count') | string -%}
        {%- set every = prediction_setting('snapshot_every_days') | string -%}
        {%- if not (modules.re.match('^[1-9][0-9]?$', count) and modules.re.match('^[1-9][0-9]{0,3}$', every)) -%}
            {{ exceptions.raise_compiler_error("snapshot_count must be 1..99 and snapshot_every_days 1..9999, got "
                ~ count ~ " and " ~ every) }}
        {%- endif -%}
        select cast({{ dbt.dateadd('day', '-(' ~ prediction_horizon_days() ~ ' + k.k * ' ~ every ~ ')', as_of_date()) }}
            as date) as as_of_date
        from (select unnest(range({{ count }})) as k) as k
    {%- endif -%}
{%- endmacro %}

{#- The playbook lift's settings (segments.playbook_lift). `lift_setting('window_days')`: the days after an action
    its outcome is measured over, from SEGMENTS_LIFT_WINDOW_DAYS, else var lift_window_days;
    `lift_setting('min_group_customers')`: below this many treated or holdout customers an action's lift is flagged
    as too small to say anything, from var lift_min_group_customers. Whole numbers, validated. -#}
{% macro lift_setting(key) -%}
    {%- if key == 'window_days' -%}
        {%- set chosen = env_var('SEGMENTS_LIFT_WINDOW_DAYS', '') or var('lift_window_days') -%}
    {%- elif key == 'min_group_customers' -%}
        {%- set chosen = var('lift_min_group_customers') -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("unknown lift setting " ~ key) }}
    {%- endif -%}
    {%- if not modules.re.match('^[1-9][0-9]{0,3}$', chosen | string | trim) -%}
        {{ exceptions.raise_compiler_error("lift " ~ key ~ " must be a whole number 1..9999, got " ~ chosen) }}
    {%- endif -%}
    {{ chosen | string | trim }}
{%- endmacro %}
