"""Analysis tools: PWCCA/CKA, statistics, 2-D maps, figures and tables."""
