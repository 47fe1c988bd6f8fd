"""The staff console's reports from the synced directory table and the audit trail, within the viewer's reach."""
