DROP TABLE complaint_satisfaction, complaint_resolutions, complaint_comments, complaint_escalations,
    complaint_clocks, complaints, answer_uses, answers, complaint_sla_policies, business_calendars;
ALTER TABLE users DROP COLUMN manager_id;
