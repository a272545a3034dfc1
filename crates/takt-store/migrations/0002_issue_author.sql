-- Who created a local issue: the person who may not be the only approver of its change.
ALTER TABLE issues ADD COLUMN author TEXT;
