-- Staff name themselves on their own profile (`PATCH /auth/me`): the name boards and
-- assignment pickers show beside the e-mail.
ALTER TABLE users ADD COLUMN display_name text
    CHECK (display_name IS NULL OR char_length(display_name) BETWEEN 1 AND 200);
