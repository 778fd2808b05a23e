-- Age profile per institution, year and age band, with disclosure control decided once (the
-- benchmark's share_young is a sum of two of these cells): persons by age band at their first
-- visit of the year. The population they are compared with is market_age's (it is read off the
-- published catchment shares, so it needs market_catchment).
with institution_years as (
    select * from {{ ref('int_institution_years') }}
),

person_years as (
    select * from {{ ref('int_person_institution_years_keyed') }}
    where age_band is not null
),

bands as (
    {{ label_table('age_band', ['0-11', '12-17', '18-29', '30-44', '45-64', '65+']) }}
),

counts as (
    select
        institution_code,
        year,
        age_band,
        count(*) as n_persons,
        sum(record_key) as key_persons
    from person_years
    group by institution_code, year, age_band
),

cells as (
    select
        institution_years.institution_code,
        institution_years.year,
        bands.age_band,
        bands.sort_order as band_order,
        coalesce(counts.n_persons, 0) as n_persons,
        sum(coalesce(counts.n_persons, 0)) over (
            partition by institution_years.institution_code, institution_years.year
        ) as n_known_age,
        coalesce(counts.key_persons, 0) as key_persons,
        sum(coalesce(counts.key_persons, 0)) over (
            partition by institution_years.institution_code, institution_years.year
        ) as key_known_age
    from institution_years
    cross join bands
    left join counts
        on institution_years.institution_code = counts.institution_code
        and institution_years.year = counts.year
        and bands.age_band = counts.age_band
),

-- the benchmark's share_young adds the bands 12-17 and 18-29: the second withheld band is
-- sought on the same side of that split as the first, so that share_young stays publishable
primary_suppression as (
    select
        cells.*,
        case when age_band in ('12-17', '18-29') then 'young' else 'other' end as young_split,
        {{ k_fails('n_persons') }} as is_withheld
    from cells
),

final as (
    {{ secondary_suppression(
        'primary_suppression',
        ['institution_code', 'year', 'age_band', 'band_order', 'n_persons', 'n_known_age',
         'key_persons', 'key_known_age'],
        set_columns=['institution_code', 'year'],
        n_column='n_persons', flag_column='is_withheld', tiebreak=['band_order'],
        prefer_set=['institution_code', 'year', 'young_split']
    ) }}
)

select * from final
