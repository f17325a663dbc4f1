"""Name, place and product pools of the demo generator (small, hand-made, per region)."""

from __future__ import annotations

# country -> (region, currency, phone country code, cities with postal code prefixes, e-mail providers)
COUNTRIES = {
    "DE": ("de", "EUR", "49", [("Berlin", "10"), ("Hamburg", "20"), ("München", "80"), ("Köln", "50"), ("Frankfurt", "60")], ["gmail.com", "web.de", "gmx.de", "t-online.de"]),
    "FR": ("fr", "EUR", "33", [("Paris", "75"), ("Lyon", "69"), ("Marseille", "13"), ("Toulouse", "31"), ("Nantes", "44")], ["gmail.com", "orange.fr", "free.fr", "yahoo.fr"]),
    "GB": ("en", "GBP", "44", [("London", "E1"), ("Manchester", "M1"), ("Leeds", "LS1"), ("Bristol", "BS1"), ("Glasgow", "G1")], ["gmail.com", "outlook.com", "btinternet.com", "yahoo.co.uk"]),
    "NL": ("nl", "EUR", "31", [("Amsterdam", "10"), ("Rotterdam", "30"), ("Utrecht", "35"), ("Den Haag", "25"), ("Eindhoven", "56")], ["gmail.com", "ziggo.nl", "kpnmail.nl", "outlook.com"]),
    "US": ("en", "USD", "1", [("New York", "100"), ("Chicago", "606"), ("Austin", "787"), ("Seattle", "981"), ("Boston", "021")], ["gmail.com", "yahoo.com", "outlook.com", "icloud.com"]),
    "CH": ("de", "CHF", "41", [("Zürich", "80"), ("Bern", "30"), ("Basel", "40"), ("Genève", "12"), ("Luzern", "60")], ["gmail.com", "bluewin.ch", "gmx.ch", "outlook.com"]),
}
COUNTRY_SHARES = {"DE": 0.30, "FR": 0.20, "GB": 0.18, "NL": 0.10, "US": 0.15, "CH": 0.07}

FIRST_NAMES = {
    "de": ["Anna", "Lena", "Julia", "Katharina", "Sophie", "Marie", "Laura", "Hannah", "Sarah", "Jürgen", "Michael", "Thomas", "Andreas", "Stefan", "Matthias", "Alexander", "Christian", "Daniel", "Tobias", "Jörg", "Sebastian", "Florian", "Johannes", "Claudia", "Sabine", "Petra", "Ute", "Günter", "Wolfgang", "Felix"],
    "fr": ["Camille", "Léa", "Manon", "Chloé", "Inès", "Sarah", "Julie", "Élodie", "Céline", "Nathalie", "Lucas", "Hugo", "Louis", "Gabriel", "Jules", "Nicolas", "Julien", "Thomas", "Pierre", "François", "Mathieu", "Antoine", "Sébastien", "Jérôme", "Stéphane", "Hélène", "Amélie", "Margaux", "Benoît", "Rémi"],
    "en": ["Robert", "William", "James", "Elizabeth", "Katherine", "Margaret", "Jennifer", "Michael", "Richard", "Thomas", "Christopher", "Daniel", "Matthew", "Anthony", "Joseph", "Jonathan", "Benjamin", "Samuel", "Alexander", "Patricia", "Susan", "Jessica", "Rebecca", "Victoria", "Emily", "Olivia", "Charlotte", "Edward", "Nicholas", "Andrew"],
    "nl": ["Daan", "Sem", "Lucas", "Jesse", "Thijs", "Bram", "Ruben", "Lars", "Sander", "Pieter", "Emma", "Julia", "Sophie", "Lotte", "Fleur", "Anouk", "Sanne", "Femke", "Eva", "Lieke", "Joost", "Wouter", "Maarten", "Koen", "Jeroen", "Marieke", "Ingrid", "Annelies", "Hendrik", "Willem"],
}
LAST_NAMES = {
    "de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann"],
    "fr": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Lefèbvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martinez", "Légaré"],
    "en": ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "White", "Harris", "Martin", "Thompson", "Clark", "Lewis", "Walker", "Hall", "Allen", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson"],
    "nl": ["de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker", "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer", "van der Linden", "Kok", "Jacobs", "de Haan", "Vermeulen"],
}
STREETS = {
    "de": ["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schulstraße", "Lindenallee", "Bergstraße"],
    "fr": ["rue de la Paix", "avenue Victor Hugo", "rue du Moulin", "boulevard Voltaire", "rue des Lilas", "place de la Mairie"],
    "en": ["High Street", "Station Road", "Church Lane", "Park Avenue", "Main Street", "Oak Drive"],
    "nl": ["Dorpsstraat", "Kerkstraat", "Molenweg", "Stationsweg", "Schoolstraat", "Julianalaan"],
}
# Common nicknames as they appear in a second system (given name -> short form).
NICKNAMES = {
    "Robert": "Bob", "William": "Bill", "James": "Jim", "Elizabeth": "Liz", "Katherine": "Kate", "Margaret": "Maggie",
    "Jennifer": "Jenny", "Michael": "Mike", "Richard": "Dick", "Thomas": "Tom", "Christopher": "Chris", "Daniel": "Dan",
    "Matthew": "Matt", "Anthony": "Tony", "Joseph": "Joe", "Jonathan": "Jon", "Benjamin": "Ben", "Samuel": "Sam",
    "Alexander": "Alex", "Patricia": "Pat", "Susan": "Sue", "Jessica": "Jess", "Rebecca": "Becky", "Victoria": "Vicky",
    "Edward": "Ed", "Nicholas": "Nick", "Andrew": "Andy", "Katharina": "Kathi", "Johannes": "Hannes", "Sebastian": "Basti",
    "Nicolas": "Nico", "Hendrik": "Henk", "Willem": "Wim",
}
# German and French letters as a system without accents writes them.
ASCII_FOLD = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "é": "e", "è": "e", "ê": "e", "É": "E", "ç": "c", "à": "a", "â": "a", "î": "i", "ô": "o", "û": "u"}
CATEGORIES = ["home", "kitchen", "garden", "toys", "books", "fashion", "beauty", "electronics", "sports", "stationery"]
# median unit price in EUR per category
CATEGORY_PRICE = [25.0, 18.0, 30.0, 15.0, 12.0, 35.0, 14.0, 80.0, 40.0, 6.0]
TICKET_CATEGORIES = ["delivery", "billing", "product", "returns", "account"]
# nominal value of one unit in EUR, around which the daily rates walk
FX_LEVELS = {"EUR": 1.0, "GBP": 1.16, "USD": 0.92, "CHF": 1.04}
