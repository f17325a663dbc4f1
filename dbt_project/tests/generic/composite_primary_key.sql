{#- A composite primary key holds: no two rows share the combination of the columns and no key column is
    null, in one query (the test for a key declared in the model's `config.meta.primary_key` with more
    than one column; a one-column key uses dbt's `unique` + `not_null`). -#}
{% test composite_primary_key(model, combination_of_columns) %}

select
    {{ combination_of_columns | join(', ') }},
    count(*) as n_records
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having
    count(*) > 1
    {%- for column in combination_of_columns %}
    or {{ column }} is null
    {%- endfor %}

{% endtest %}
