-- A plan an admin creates opens every DJ's monetized content. That is decided when the plan
-- is created and kept with it, so promoting a DJ later never turns their plans all-access.
ALTER TABLE monetization_plans ADD COLUMN platform_wide boolean NOT NULL DEFAULT false;
UPDATE monetization_plans p SET platform_wide = true
FROM users u WHERE u.user_id = p.owner_id AND u.role = 'admin';
