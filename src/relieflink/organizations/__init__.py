"""Organizations: donors, NGOs, carriers, health providers, government bodies, committees."""
