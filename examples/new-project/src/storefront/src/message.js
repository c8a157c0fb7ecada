// The banner of the shop's front page.
export const message = "Welcome to the shop";
