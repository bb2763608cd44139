-- The user record Data Lab's resClient reads and writes (getUser, setUser, listFields):
-- contact details an account holder may keep with their account. Optional, owned by
-- starbox.accounts like the rest of the table. Idempotent.
ALTER TABLE starbox.accounts ADD COLUMN IF NOT EXISTS email text;
ALTER TABLE starbox.accounts ADD COLUMN IF NOT EXISTS full_name text;
ALTER TABLE starbox.accounts ADD COLUMN IF NOT EXISTS institute text;
