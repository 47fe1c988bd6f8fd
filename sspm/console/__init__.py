"""The staff console's roles page (who holds which role; grant, take back) and its audit trail viewer."""
