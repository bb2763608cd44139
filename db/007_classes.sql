-- Temporary class accounts: an instructor makes a batch of accounts for a course (a "class"),
-- each ending at the same time. An account past `expires` cannot log in and its tokens stop
-- working; its tables and files stay until the class is removed (starbox accounts class).
ALTER TABLE starbox.accounts ADD COLUMN IF NOT EXISTS class text;
ALTER TABLE starbox.accounts ADD COLUMN IF NOT EXISTS expires timestamptz;
CREATE INDEX IF NOT EXISTS accounts_class_idx ON starbox.accounts (class) WHERE class IS NOT NULL;
