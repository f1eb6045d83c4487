"""The names the generator draws from: the named edge-case learners, first and last names,
cities, departments and course titles."""

from __future__ import annotations

_NAMED_LEARNERS = (
    ("zoe", "Zoë", "Ashworth"),
    ("jose", "José", "García"),
    ("lukasz", "Łukasz", "Wiśniewski"),
    ("obrien", "Siobhán", "O'Brien"),
    ("quoted", "John", 'Smith, "Jr"'),
    ("deleted", "Megan", "Price"),
    ("suspended", "Ravi", "Kapoor"),
)
_FIRST_NAMES = (
    "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Sophia", "Leo",
    "Grace", "Arthur", "Lily", "Muhammad", "Freya", "Oscar", "Emily", "Charlie", "Ella", "Jacob",
    "Poppy", "Thomas", "Evie", "Aisha", "Priya", "Rohan", "Chloe", "Daniel", "Hannah", "Liam",
    "Niamh", "Ciarán", "Mateusz", "Zofia", "Renée", "François", "Anaïs", "Björn", "Chidi",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes",
    "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Khan", "Jackson", "Wood", "Turner",
    "Martin", "Cooper", "Hill", "Ward", "Morris", "Moore", "Nguyen", "Kowalski", "Müller",
    "D'Souza", "Okafor", "Ó Súilleabháin",
)  # fmt: skip
_CITIES = (
    ("London", "GB"), ("Manchester", "GB"), ("Leeds", "GB"), ("Bristol", "GB"), ("Cardiff", "GB"),
    ("Glasgow", "GB"), ("Belfast", "GB"), ("Dublin", "IE"), ("Kraków", "PL"), ("Sevilla", "ES"),
)  # fmt: skip
_DEPARTMENTS = ("Nursing", "Estates", "Pharmacy", "Human Resources", "Finance", "Radiology", "A&E")
_COURSES = (
    ("Fire Safety Awareness", "FIRE-101"),
    ("Information Governance and Data Security", "IG-2026"),
    ("Moving and Handling", "MH-L1"),
    ('Infection Prevention, "Standard Precautions"', "IPC-L2"),
    ("Safeguarding Adults \N{EN DASH} Level 2", "SGA-L2"),
    ("Équipe Leadership: Managing Conflict", "LEAD-EQ"),
    ("Basic Life Support", "BLS"),
    ("Equality, Diversity and Human Rights", "EDHR"),
)
