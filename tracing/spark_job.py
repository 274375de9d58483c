"""The F1 derivation on Spark, for check-ins too many for one machine: the same query (COPRESENCE), run by Spark SQL.

On a cluster, from a driver with the platform installed (the executors run Spark SQL alone, no Python of ours), with
the check-ins kept as Parquet where the executors read them (HDFS, S3):

    spark-submit --master yarn tracing/spark_job.py \\
        --checkins s3a://health-declarations/checkins/ --cases cases.csv --out f1.csv
    outreach contacts import f1.csv --list "F1 of BN1234" --province 27

`--cases` and `--out` are files of the driver. The cases are a small table Spark broadcasts to every executor. `--out`
is the list as `outreach contacts import` reads it, with every case code and venue beside.
"""

import argparse
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from campaigns.importer import ReadLimits
from tracing.copresence import Case, Exposure, cases_table, copresence_sql, fold, read_cases, write_list_file

if TYPE_CHECKING:  # pyspark is for the cluster (and the tests), not a dependency of the platform
    from pyspark.sql import SparkSession


def spark_exposures(
    spark: "SparkSession", checkins: list[str], cases: list[Case], zone: ZoneInfo, dwell_minutes: int
) -> list[Exposure]:
    """The query on Spark. Spark's session time zone must be UTC; times come back as instants."""
    from pyspark.sql.types import StringType, StructField, StructType, TimestampType

    spark.read.parquet(*checkins).createOrReplaceTempView("checkins")
    table = cases_table(cases, zone).to_pylist()
    schema = StructType(
        [
            StructField("phone", StringType(), False),
            StructField("case_code", StringType(), False),
            StructField("infectious_start", TimestampType(), False),
            StructField("infectious_end", TimestampType(), False),
        ]
    )
    spark.createDataFrame([tuple(row.values()) for row in table], schema).createOrReplaceTempView("cases")
    rows = spark.sql(copresence_sql(dwell_minutes)).collect()
    # PySpark gives naive datetimes in this process's local time: astimezone reads them as local.
    return [Exposure(row.phone, row.case_code, row.venue_id, row.last_together.astimezone(UTC)) for row in rows]


def main() -> None:
    from pyspark.sql import SparkSession

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkins", nargs="+", required=True, help="Parquet files or folders of check-ins")
    parser.add_argument("--cases", type=Path, required=True, help="CSV or XLSX: phone, infectious_from, ...")
    parser.add_argument("--out", type=Path, required=True, help="the F1 list (CSV) to import")
    parser.add_argument("--dwell-minutes", type=int, default=60)
    parser.add_argument("--timezone", default="Asia/Ho_Chi_Minh", help="the zone of the cases' dates")
    options = parser.parse_args()
    spark = SparkSession.builder.appName("outreach-f1").config("spark.sql.session.timeZone", "UTC").getOrCreate()
    zone = ZoneInfo(options.timezone)
    cases = read_cases(options.cases, ReadLimits())
    found = spark_exposures(spark, options.checkins, cases, zone, options.dwell_minutes)
    write_list_file(options.out, fold(found, zone))
    spark.stop()


if __name__ == "__main__":
    main()
