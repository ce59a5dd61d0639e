"""meter's built-in price tables: data, not code. Installed as ``meter.pricing.tables``.

This folder holds the TOML layers (loaded in name order), the JSON Schema of the table format for
editors (``price-table.schema.json``) and, in ``azure-retail/``, the Retail Prices excerpt the
generated layer comes from. The code that reads them is ``meter/pricing``.
"""
