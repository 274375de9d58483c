"""national data: lab results, confirmed cases, alerts from a laboratory, vaccination records

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 14:26:34.618993
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lab_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("sample_date", sa.Date(), nullable=False),
        sa.Column(
            "result",
            sa.Enum("positive", "negative", "pending", name="testresult", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("lab", sa.String(length=200), nullable=False),
        sa.Column("source_file", sa.String(length=500), nullable=True),
        sa.Column("imported_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("imported_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["imported_by_id"], ["users.id"], name=op.f("fk_lab_results_imported_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_lab_results_person_id_people"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lab_results")),
        sa.UniqueConstraint(
            "person_id", "sample_date", "lab", "result", name=op.f("uq_lab_results_person_id_sample_date_lab_result")
        ),
    )
    with op.batch_alter_table("lab_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lab_results_person_id"), ["person_id"], unique=False)

    op.create_table(
        "vaccination_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("doses", sa.Integer(), nullable=False),
        sa.Column("last_dose_date", sa.Date(), nullable=True, comment="none when no dose"),
        sa.Column("source_file", sa.String(length=500), nullable=True),
        sa.Column("imported_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("imported_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["imported_by_id"],
            ["users.id"],
            name=op.f("fk_vaccination_records_imported_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_vaccination_records_person_id_people"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vaccination_records")),
    )
    with op.batch_alter_table("vaccination_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vaccination_records_person_id"), ["person_id"], unique=False)

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lab_result_id", sa.Integer(), nullable=True, comment="what a laboratory reported")
        )
        batch_op.alter_column(
            "declaration_id", existing_type=sa.INTEGER(), nullable=True, comment="what the resident said; or"
        )
        batch_op.create_index(batch_op.f("ix_alerts_lab_result_id"), ["lab_result_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_lab_result_id_lab_results"),
            "lab_results",
            ["lab_result_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_check_constraint("one_source", "(declaration_id IS NULL) <> (lab_result_id IS NULL)")

    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "confirmed_case_on",
                sa.Date(),
                nullable=True,
                comment="first positive sample's date: a case (F0) since, no longer an F1 to follow",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("confirmed_case_on")

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_alerts_one_source"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_alerts_lab_result_id_lab_results"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_alerts_lab_result_id"))
        batch_op.alter_column("declaration_id", existing_type=sa.INTEGER(), nullable=False, comment=None)
        batch_op.drop_column("lab_result_id")

    with op.batch_alter_table("vaccination_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vaccination_records_person_id"))

    op.drop_table("vaccination_records")
    with op.batch_alter_table("lab_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lab_results_person_id"))

    op.drop_table("lab_results")
