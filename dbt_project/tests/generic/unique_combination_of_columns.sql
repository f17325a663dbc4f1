{#- The combination of the columns is unique: the test for a composite primary key (declared in the
    model's `config.meta.primary_key`, each column also tested not_null). Rows with nulls group
    together, so a null in a key column counts as a value (unlike `unique`, which skips nulls). -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

select
    {{ combination_of_columns | join(', ') }},
    count(*) as n_records
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1

{% endtest %}
