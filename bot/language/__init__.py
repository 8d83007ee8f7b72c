"""The French language as Guichet reads it: one module per concept (stop and question words, abbreviations,
numbers and units, yes/no, the situations a rule tells apart), each list written once and imported everywhere."""
