-- Deliveries (leveringen): every file a member delivered, once it is decided (accepted,
-- rejected or a duplicate of an earlier one), with the soft problems that did not reject it
-- (delivery-standard.md: counted in the delivery report) and the rules a rejected one broke.
-- Each member sees its own rows in its package: the file's SHA-256 tells which file it was (the
-- file name is the member's free text and is not published). It describes files, not persons:
-- no values of a delivery, only counts of rows and of problems. Left out on purpose: the rows of
-- erased persons a delivery still held (a count per file could point at one person's request),
-- the names of ignored columns (free text of the member's header row; their number is kept).
{%- set soft = ['email_unparseable', 'phone_unparseable', 'ticket_type_unknown',
                'channel_unknown', 'birth_date_unparseable', 'research_opt_out_unknown',
                'discipline_unknown', 'text_truncated', 'unknown_columns'] %}

-- Only members of the registry: an upload into a folder that is no member's is rejected
-- (unknown_institution) and stays in the ledger, but its folder name is free text, no member's
-- package is its to show, and as a code it would be taken for another member's name.
with ledger as (
    select * from {{ source('intake', 'deliveries') }}
    where status in ('accepted', 'rejected', 'duplicate')
),

members as (
    select institution_code from {{ ref('stg_reference__institutions') }}
),

final as (
    select
        institution_code,
        delivery_id,
        cast(received_at as timestamp) as received_at,
        status,
        kind,
        file_format,
        sha256,
        cast(rows_total as bigint) as rows_total,
        cast(case when status = 'accepted' then coalesce(rows_loaded, 0) else 0 end as bigint)
            as rows_loaded,
        reason as rejected_for,
        duplicate_of
        {%- for problem in soft %},
        cast(
            case
                when status = 'accepted'
                    then coalesce(cast(json_extract_string(soft_problems, '$.{{ problem }}') as bigint), 0)
            end as bigint
        ) as {{ problem }}
        {%- endfor %}
    from ledger
    where institution_code in (select institution_code from members)
)

select * from final
