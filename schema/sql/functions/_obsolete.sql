-- Functions of earlier pgqgo releases that the current code no longer has.
-- Dropped here so an upgraded database holds the same functions as a fresh
-- install (checked by the upgrade tests).
DROP FUNCTION IF EXISTS pgq._row_names(json); -- 0.2.0: trigger column names, now read in pgq._trigger_layout_text
DROP FUNCTION IF EXISTS pgq._urlencode_format(text[], text[]); -- 0.2.0: now with an offset argument
