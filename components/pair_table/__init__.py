"""The pair table: top-n novel clusters for all N^2 cluster pairs, pushed to Feast."""
