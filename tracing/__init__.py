"""The national platforms' data: QR check-ins and the F1 lists derived from them by co-presence with cases.

Check-ins are analytical data (millions of rows a day, read whole by a join), so they live as Parquet files read by an
embedded analytical engine (DuckDB), never in the declaration store; what the derivation finds becomes an ordinary
contact list there.
"""
