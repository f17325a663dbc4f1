-- Staging is 1:1 with raw: no table gains or loses rows.
{% set pairs = [
    ('crm', 'customers', 'stg_crm__customers'), ('crm', 'consents', 'stg_crm__consents'),
    ('erp', 'accounts', 'stg_erp__accounts'), ('erp', 'orders', 'stg_erp__orders'),
    ('erp', 'order_lines', 'stg_erp__order_lines'), ('erp', 'payments', 'stg_erp__payments'),
    ('erp', 'fx_rates', 'stg_erp__fx_rates'), ('support', 'tickets', 'stg_support__tickets'),
    ('events', 'events', 'stg_events__events'),
] %}
{% for src, tbl, stg in pairs %}
    select
        '{{ src }}.{{ tbl }}' as source_table,
        (select count(*) from {{ source(src, tbl) }}) as raw_rows,
        (select count(*) from {{ ref(stg) }}) as staging_rows
    where (select count(*) from {{ source(src, tbl) }}) <> (select count(*) from {{ ref(stg) }})
    {% if not loop.last %}union all{% endif %}
{% endfor %}
