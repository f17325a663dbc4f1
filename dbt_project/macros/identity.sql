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
