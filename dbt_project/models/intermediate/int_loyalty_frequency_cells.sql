-- Persons per institution, year and frequency band (visits = distinct events attended in the
-- year), every band present (0 where no one): raw counts before disclosure control, with the
-- sum of the persons' record keys (the perturbation's cell key).
with institution_years as (
    select * from {{ ref('int_institution_years') }}
),

person_years as (
    select * from {{ ref('int_person_institution_years_keyed') }}
),

bands as (
    {{ label_table('frequency_band', ['1', '2', '3-5', '6+']) }}
),

counts as (
    select
        institution_code,
        year,
        {{ frequency_band('visits') }} as frequency_band,
        count(*) as n_persons,
        sum(record_key) as key_persons
    from person_years
    group by institution_code, year, {{ frequency_band('visits') }}
),

final as (
    select
        institution_years.institution_code,
        institution_years.year,
        bands.frequency_band,
        bands.sort_order as band_order,
        coalesce(counts.n_persons, 0) as n_persons,
        coalesce(counts.key_persons, 0) as key_persons
    from institution_years
    cross join bands
    left join counts
        on institution_years.institution_code = counts.institution_code
        and institution_years.year = counts.year
        and bands.frequency_band = counts.frequency_band
)

select * from final
