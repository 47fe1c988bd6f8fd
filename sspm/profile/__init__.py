"""The profile: one's own account as the directory has it, and one's own login email and mobile number."""
