DROP TABLE club_referrals, club_registrations, club_events, club_reward_redemptions,
    club_rewards, club_rules, points_lots, points_entries, club_tier_changes, club_members,
    club_tiers, club_settings;
DROP FUNCTION points_entries_append_only();
DROP FUNCTION uuid_v7();
DROP SEQUENCE club_member_numbers;
