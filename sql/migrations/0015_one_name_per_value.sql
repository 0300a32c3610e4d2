-- One French name per value (issue 15, "one motif with two French names"):
-- the indicator catalogue called the headache motif "Céphalée" and the
-- same-day urgency "Le jour même", while the request form (clients/web/app.js)
-- says "Maux de tête" and "Dans la journée" (snpctl, clients/cli/labels.c,
-- had a third name for two motifs).  A pharmacist choosing "Maux de tête"
-- then found "Céphalée" in the coordinator's figures.  The catalogue and
-- snpctl take the form's words;
-- tests/clients/test_snpctl.c (labels_match_the_catalogue) keeps the three
-- lists in step.
UPDATE indicator_key_label SET label_fr = 'Maux de tête'
 WHERE breakdown = 'motif' AND key = 'headache';
UPDATE indicator_key_label SET label_fr = 'Dans la journée'
 WHERE breakdown = 'urgency' AND key = 'same_day';
UPDATE indicator_key_label SET label_fr = 'ORL (gorge, oreilles, nez)'
 WHERE breakdown = 'motif' AND key = 'ent';
UPDATE indicator_key_label SET label_fr = 'Autre motif'
 WHERE breakdown = 'motif' AND key = 'other';
