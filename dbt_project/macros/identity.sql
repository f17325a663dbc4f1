{#- Identity normalisation: the forms records are compared in. Raw values stay in staging;
    these keys exist only in the identity layer (intermediate schema). -#}

{#- Lowercase ASCII letters only: umlauts expanded as German systems write them (ü -> ue), other
    accents stripped (é -> e), everything that is not a letter dropped ("van den Berg" -> vandenberg). -#}
{% macro normalize_person_name(column) -%}
    nullif(
        regexp_replace(
            strip_accents(
                replace(replace(replace(replace(lower(trim({{ column }})), 'ä', 'ae'), 'ö', 'oe'), 'ü', 'ue'), 'ß', 'ss')
            ),
            '[^a-z]', '', 'g'
        ),
        ''
    )
{%- endmacro %}

{#- E-mail as the mailbox it delivers to: lowercase, no whitespace, sub-address (+tag) removed,
    googlemail.com folded into gmail.com and dots in Gmail local parts ignored (Gmail ignores them).
    The Gmail test is a regex, not `in (...)`: DuckDB 2.0 fails to bind `split_part(..) in (..)` inside
    a nested CASE when the column is entirely NULL (an ERP-only export without e-mails). -#}
{% macro normalize_email_key(column) -%}
    case
        when regexp_matches(lower(regexp_replace({{ column }}, '\s', '', 'g')), '^[^@]+@[^@]+\.[^@]+$') then
            case
                when regexp_matches(lower(regexp_replace({{ column }}, '\s', '', 'g')), '@(gmail|googlemail)\.com$') then
                    replace(split_part(split_part(lower(regexp_replace({{ column }}, '\s', '', 'g')), '@', 1), '+', 1), '.', '')
                    || '@gmail.com'
                else
                    split_part(split_part(lower(regexp_replace({{ column }}, '\s', '', 'g')), '@', 1), '+', 1)
                    || '@' || split_part(lower(regexp_replace({{ column }}, '\s', '', 'g')), '@', 2)
            end
    end
{%- endmacro %}

{#- A company as one key: folded like names (digits kept), legal forms dropped ("ACME GmbH" = "Acme"). -#}
{% macro normalize_company(column) -%}
    nullif(
        regexp_replace(
            regexp_replace(
                strip_accents(
                    replace(replace(replace(replace(lower(trim({{ column }})), 'ä', 'ae'), 'ö', 'oe'), 'ü', 'ue'), 'ß', 'ss')
                ),
                '\b(gmbh|ag|kg|ltd|limited|llc|inc|plc|sa|sas|sarl|bv|nv|srl|spa|co|corp|corporation|company)\b\.?', '', 'g'
            ),
            '[^a-z0-9]', '', 'g'
        ),
        ''
    )
{%- endmacro %}

{#- Postal codes compare without case, spaces or dashes ("ec1a 1bb" = "EC1A1BB"). -#}
{% macro normalize_postal_code(column) -%}
    nullif(upper(regexp_replace({{ column }}, '[\s-]', '', 'g')), '')
{%- endmacro %}

{#- Street and house number as one key: letters folded like names, common abbreviations expanded. -#}
{% macro normalize_street(column) -%}
    nullif(
        regexp_replace(
            regexp_replace(
                regexp_replace(
                    strip_accents(
                        replace(replace(replace(replace(lower(trim({{ column }})), 'ä', 'ae'), 'ö', 'oe'), 'ü', 'ue'), 'ß', 'ss')
                    ),
                    'str\.', 'strasse', 'g'
                ),
                '\b(rd)\b\.?', 'road', 'g'
            ),
            '[^a-z0-9]', '', 'g'
        ),
        ''
    )
{%- endmacro %}

{#- Trust in a source system's person data, from var identity_source_trust (unknown systems: 0.1). -#}
{% macro source_trust(column) -%}
    case {{ column }}
    {%- for system, trust in var('identity_source_trust').items() %}
        when '{{ system }}' then {{ trust }}
    {%- endfor %}
        else 0.1
    end
{%- endmacro %}

{#- Golden-record survivorship for one field: the value of the best-scored record that has one,
    with provenance (<field>_source = record id, <field>_updated_at = that record's last update). -#}
{% macro survivor(field) -%}
    arg_min({{ field }}, survivor_rank) filter (where {{ field }} is not null) as {{ field }},
    arg_min(record_id, survivor_rank) filter (where {{ field }} is not null) as {{ field }}_source,
    arg_min(record_updated_at, survivor_rank) filter (where {{ field }} is not null) as {{ field }}_updated_at
{%- endmacro %}

{#- The blocklist's regex patterns for one field, read from the seed table when the model runs, so the
    model can test each as a constant regex that DuckDB compiles once. A pattern read from a table
    column is compiled again for every row it is tested against: the phone patterns alone cost ~40 s of
    CPU at a million customers. Returns none at parse time and when the seed is not a table in the
    warehouse (a unit test's fixture rows): the model then joins the blocklist as data, same result.
    Patterns reach the SQL only as escaped string literals. -#}
{% macro blocklist_patterns(field) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set seed = ref('identity_blocklist') -%}
    {%- if seed.identifier is none or seed.schema is none -%}{{ return(none) }}{%- endif -%}
    {%- set existing = adapter.get_relation(database=seed.database, schema=seed.schema, identifier=seed.identifier) -%}
    {%- if existing is none -%}{{ return(none) }}{%- endif -%}
    {%- set result = run_query(
        "select distinct value from " ~ existing ~ " where field = '" ~ field ~ "' and match_type = 'pattern' and value is not null order by value"
    ) -%}
    {{ return(result.columns[0].values() | list) }}
{%- endmacro %}

{#- A SQL string literal for a value from a seed (single quotes doubled). -#}
{% macro sql_string(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}

{#- The body of a CTE with one row (record_id, value) per row of `source` whose `column` matches a
    blocklist pattern of `field` (value = the pattern): constant regexes when `patterns` is a list
    (from blocklist_patterns), else a join on the blocklist CTE `blocklist`. -#}
{% macro blocklist_pattern_hits(source, column, field, patterns) -%}
    {%- if patterns is none %}
    select s.record_id, b.value
    from {{ source }} as s
    inner join blocklist as b
        on b.field = '{{ field }}' and b.match_type = 'pattern' and regexp_matches(s.{{ column }}, b.value)
    {%- else %}
        {%- for pattern in patterns %}
    select record_id, {{ sql_string(pattern) }} as value from {{ source }}
    where regexp_matches({{ column }}, {{ sql_string(pattern) }})
    union all
        {%- endfor %}
    select cast(null as varchar) as record_id, cast(null as varchar) as value where false
    {%- endif %}
{%- endmacro %}
