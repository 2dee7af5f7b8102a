{#- A run's verdict under the accuracy guard, from its run_summary row (`summary`) and its configuration_agreement
    row (`agreement`, left-joined): 'reference' (the configuration every other one is checked against), 'not
    applied: random weights' (nothing to agree on), 'passes' or 'fails'. best_configuration and the tuning marts
    rank only what does not fail. -#}
{% macro accuracy_guard(summary, agreement) %}
    case
        when {{ summary }}.is_reference_configuration then 'reference'
        when {{ summary }}.weights_source = 'seeded_random' then 'not applied: random weights'
        when {{ agreement }}.passes then 'passes'
        else 'fails'
    end
{%- endmacro %}
