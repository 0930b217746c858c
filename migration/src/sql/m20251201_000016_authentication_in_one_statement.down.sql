DROP FUNCTION ipa_authenticate(bytea, double precision, double precision);
