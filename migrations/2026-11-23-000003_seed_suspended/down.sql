DROP TABLE seed_suspended;
