"""The staff console's Jobs page: what the background jobs did lately, for Super Admins and Admins."""
