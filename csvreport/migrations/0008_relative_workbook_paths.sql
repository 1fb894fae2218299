-- Why: workbooks.path and email_delivery.path held absolute paths, so a home folder that was
-- moved or copied (a new disk, a test copy of production) reported every workbook missing and
-- mailed nothing. From now on a path inside the home is stored relative to it
-- (reports/hourly_20260329_1400.xlsx); a path outside it (a [paths] reports folder elsewhere)
-- stays absolute. This converts the rows written before. csvreport_home() is the home folder
-- of the run that applies the migration (NULL when unknown: then nothing changes, and the
-- absolute paths keep working where they are).

UPDATE workbooks
   SET path = substr(path, length(rtrim(csvreport_home(), '/')) + 2)
 WHERE csvreport_home() IS NOT NULL
   AND substr(path, 1, length(rtrim(csvreport_home(), '/')) + 1) = rtrim(csvreport_home(), '/') || '/';

UPDATE email_delivery
   SET path = substr(path, length(rtrim(csvreport_home(), '/')) + 2)
 WHERE csvreport_home() IS NOT NULL
   AND substr(path, 1, length(rtrim(csvreport_home(), '/')) + 1) = rtrim(csvreport_home(), '/') || '/';
